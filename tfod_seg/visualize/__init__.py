"""Drawing instance masks, boxes and labels (`draw`) and rendering ground truth and
predictions side by side (`render`)."""
