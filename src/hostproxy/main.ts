// Placeholder: the host proxy (issue 5) replaces this file.
