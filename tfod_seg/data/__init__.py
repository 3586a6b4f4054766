"""The data model (`types`), sample streams with skip accounting (`stream`) and image loading (`images`)."""
