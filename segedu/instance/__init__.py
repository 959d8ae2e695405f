"""Instance segmentation (unit 09): placeholder, being written."""
__all__: list[str] = []
