/* multiaddr.c - placeholder, being written */
