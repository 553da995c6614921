"""The one search loop and the callbacks that observe it (see DESIGN.md)."""
