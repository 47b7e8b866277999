"""Object detection: Faster R-CNN with NASNet-A (the TF Object Detection API's `faster_rcnn_nas`).

Example:

>>> from nasnet_app.detection import FasterRCNNConfig, NASNetFasterRCNN
>>> FasterRCNNConfig().num_anchors
12
"""

from nasnet_app.detection.coco_labels import category_names, class_name
from nasnet_app.detection.config import FasterRCNNConfig
from nasnet_app.detection.faster_rcnn import Detections, NASNetFasterRCNN

__all__ = ["Detections", "FasterRCNNConfig", "NASNetFasterRCNN", "category_names", "class_name"]
