"""Reports: machine facts, the rich table, Markdown and JSON."""
