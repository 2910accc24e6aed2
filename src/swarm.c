/* swarm.c - placeholder, being written */
