"""In-memory fakes of the things the shell talks to, with controllable clocks, for fast tests."""
