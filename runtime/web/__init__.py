"""`flow serve`: a read-only live page of the runs, the tasks and the graph, with JSON endpoints (needs flow[web])."""
