"""Where step code runs: ``local`` (threads in this process) or, later, remote executors."""
