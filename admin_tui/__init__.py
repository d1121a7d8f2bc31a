"""The Textual admin console (`photoflow admin`); built on the same services as the web and the CLI."""
