/* tcp.c - placeholder, being written */
