"""The one training loop every learned method uses; a method supplies only its model and loss."""
