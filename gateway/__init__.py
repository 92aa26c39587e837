"""The posgw daemon, its configuration and the `posgw` command line."""
