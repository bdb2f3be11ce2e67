"""Every domain write is a service here (see CONVENTIONS.md). Each is atomic and refuses what the
workflow rules forbid with a ValidationError that says why."""
