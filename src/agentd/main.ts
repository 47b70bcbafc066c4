// Placeholder: the agent supervisor (issue 5) replaces this file.
