# Nothing to create: the hosts already exist.
