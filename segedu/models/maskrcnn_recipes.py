"""The recipes of unit 09 (Mask R-CNN): placeholder, being written."""
