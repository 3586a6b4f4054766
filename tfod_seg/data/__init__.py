"""The data model (`types`), sample streams with skip accounting (`stream`), image loading and the
pixel limit (`images`), and mask sources → pixels / PNG bytes (`masks`)."""
