"""Example applications that embed koudai_flask (not part of the installed package)."""
