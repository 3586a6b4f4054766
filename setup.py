"""tfod-seg: annotated images to a deployed Mask R-CNN instance-segmentation model on TensorFlow.

Exact versions for reproducible installs live in `constraints.txt`; `make demo` / `make test`
install with `pip install -c constraints.txt -e .[test]`.
"""

from setuptools import find_packages, setup

setup(
    name="tfod-seg",
    version="0.1.0",
    description="Annotations to TFRecords, Mask R-CNN configs, training, evaluation, export and inference on TensorFlow",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.13",
    # The top-level pipelines/ and label_maps/ folders ship inside the package as
    # tfod_seg/pipelines and tfod_seg/label_maps (wheel and sdist; MANIFEST.in lists them for the
    # sdist); tfod_seg.config.templates.shipped_dir finds them installed or in a checkout.
    packages=find_packages(include=["tfod_seg", "tfod_seg.*"]) + ["tfod_seg.pipelines", "tfod_seg.label_maps"],
    package_dir={"tfod_seg.pipelines": "pipelines", "tfod_seg.label_maps": "label_maps"},
    package_data={"tfod_seg.pipelines": ["*"], "tfod_seg.label_maps": ["*"]},
    install_requires=[
        "tensorflow~=2.20.0",
        # Brings opencv-python-headless; never add opencv-python beside it (two cv2 builds conflict).
        "tf-models-official~=2.20.0",
        "pycocotools>=2.0.7",
        "lxml>=5",
        "matplotlib>=3.8",
        "protobuf>=4.21",
        "tqdm>=4.66",
        "pillow>=10",
        "numpy>=1.26",
        "pyyaml>=6",
        "tensorboard>=2.20",
        # Streaming JSON (yajl C backend): COCO instances files are read element by element.
        "ijson>=3.3",
        # TFRecord checksums (C) and tf.train.Example without TensorFlow (TFDS' copy of the proto):
        # `convert` to local folders never imports TensorFlow.
        "google-crc32c>=1.5",
        "tensorflow-datasets>=4.9",
    ],
    extras_require={
        # Conversion on Apache Beam runners (DirectRunner here; Dataflow, Flink, Spark remote).
        "beam": ["apache-beam>=2.77"],
        # Submitting conversions to Dataflow. Beam's GCP extra needs google-auth-httplib2 < 0.3 and
        # google-cloud-aiplatform < 2, so it cannot share constraints.txt (or the `cloud` extra):
        # install it in its own environment without -c constraints.txt (see docs/convert-at-scale.md).
        "dataflow": ["apache-beam[gcp]>=2.77"],
        # Submitting Vertex AI jobs (`tfod-seg launch --submit`).
        "cloud": ["google-cloud-aiplatform>=2.7"],
        # TFLite and ONNX export (`tfod-seg export --format tflite|onnx`).
        "edge": ["tf2onnx>=1.17", "onnxruntime>=1.31"],
        # The test suite exercises every extra, plus the architecture contracts.
        "test": [
            "pytest>=8", "hypothesis>=6.100", "pytest-timeout>=2.3", "import-linter>=2.16",
            "apache-beam>=2.77", "google-cloud-aiplatform>=2.7", "tf2onnx>=1.17", "onnxruntime>=1.31",
        ],
    },
    entry_points={"console_scripts": ["tfod-seg=tfod_seg.cli:console_main"]},
    include_package_data=True,
)
