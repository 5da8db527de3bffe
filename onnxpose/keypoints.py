"""The PoseNet keypoints and skeleton, as data.

Keypoint order is PoseNet's (COCO's 17 keypoints). ``POSE_CHAIN`` is the
16-edge keypoint tree that the displacement ("mid offset") heads follow: edge
``e`` is (parent, child); the forward displacement of edge ``e`` (parent ->
child) lives in channel ``e`` (y) and ``16 + e`` (x) of the 32 forward
channels, the backward one (child -> parent) in the same channels of the 32
backward channels. This is the order used by TF.js PoseNet and Coral's
decoder, and the channel layout of their ``mid_offsets`` [.., 64] head:
forward y(16), forward x(16), backward y(16), backward x(16).
"""

KEYPOINT_NAMES = (
    "nose",
    "leftEye",
    "rightEye",
    "leftEar",
    "rightEar",
    "leftShoulder",
    "rightShoulder",
    "leftElbow",
    "rightElbow",
    "leftWrist",
    "rightWrist",
    "leftHip",
    "rightHip",
    "leftKnee",
    "rightKnee",
    "leftAnkle",
    "rightAnkle",
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)
KEYPOINT_IDS = {name: i for i, name in enumerate(KEYPOINT_NAMES)}

_POSE_CHAIN_NAMES = (
    ("nose", "leftEye"),
    ("leftEye", "leftEar"),
    ("nose", "rightEye"),
    ("rightEye", "rightEar"),
    ("nose", "leftShoulder"),
    ("leftShoulder", "leftElbow"),
    ("leftElbow", "leftWrist"),
    ("leftShoulder", "leftHip"),
    ("leftHip", "leftKnee"),
    ("leftKnee", "leftAnkle"),
    ("nose", "rightShoulder"),
    ("rightShoulder", "rightElbow"),
    ("rightElbow", "rightWrist"),
    ("rightShoulder", "rightHip"),
    ("rightHip", "rightKnee"),
    ("rightKnee", "rightAnkle"),
)
#: (parent_id, child_id) for each of the 16 displacement edges, in channel order.
POSE_CHAIN = tuple((KEYPOINT_IDS[a], KEYPOINT_IDS[b]) for a, b in _POSE_CHAIN_NAMES)
NUM_EDGES = len(POSE_CHAIN)

_SKELETON_NAMES = (
    ("leftShoulder", "rightShoulder"),
    ("leftShoulder", "leftElbow"),
    ("leftElbow", "leftWrist"),
    ("rightShoulder", "rightElbow"),
    ("rightElbow", "rightWrist"),
    ("leftShoulder", "leftHip"),
    ("rightShoulder", "rightHip"),
    ("leftHip", "rightHip"),
    ("leftHip", "leftKnee"),
    ("leftKnee", "leftAnkle"),
    ("rightHip", "rightKnee"),
    ("rightKnee", "rightAnkle"),
    ("nose", "leftEye"),
    ("nose", "rightEye"),
    ("leftEye", "leftEar"),
    ("rightEye", "rightEar"),
)
#: Pairs of keypoint ids that a drawing connects with a line.
SKELETON = tuple((KEYPOINT_IDS[a], KEYPOINT_IDS[b]) for a, b in _SKELETON_NAMES)
