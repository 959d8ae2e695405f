"""TinySAM's shipped checkpoint (unit 10): placeholder until the recipe lands."""
