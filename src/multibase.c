/* multibase.c - placeholder, being written */
