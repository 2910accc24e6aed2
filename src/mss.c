/* mss.c - placeholder, being written */
