"""The loss check: the user's Trainer module probed in a child process, and the battery it runs."""
