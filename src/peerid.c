/* peerid.c - placeholder, being written */
