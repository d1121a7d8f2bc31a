"""The console's sections, one module each."""
