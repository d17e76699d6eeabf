"""The Flowfile compiler: text to checked nodes to a task graph; it never imports the runtime."""
