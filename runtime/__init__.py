"""The flow runtime: check outputs, plan, run tasks in workers, record history, report."""
