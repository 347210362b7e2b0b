"""The files toolset: read, search and edit the project's files without leaving the server."""
