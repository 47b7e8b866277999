"""Cell search: spaces, controllers, evaluators and `CellSearch` (`nasnet_app.search`)."""
