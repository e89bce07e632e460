"""The Invoke tasks, one module per area (local, deploy, db, backup, drill), each with its
presenter and its own ``Collection``; ``tasks.py`` at the project root only composes them."""
