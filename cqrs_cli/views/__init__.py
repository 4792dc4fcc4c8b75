"""The projection's views, one module each. To add a view, write a module here like
item_history.py and list it in registry.py (see base.py for what a view provides)."""
