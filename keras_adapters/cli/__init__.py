"""The command line: flags shared by the drivers and their entry points."""
