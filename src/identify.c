/* identify.c - placeholder, being written */
