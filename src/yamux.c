/* yamux.c - placeholder, being written */
