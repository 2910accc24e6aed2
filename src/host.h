/* host.h - placeholder, being written */
