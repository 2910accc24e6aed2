/* ping.c - placeholder, being written */
