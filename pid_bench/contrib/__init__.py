"""Reference learners written against the public plug-in API only, registered by entry point."""
