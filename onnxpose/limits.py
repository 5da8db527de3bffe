"""Limits shared by the build (heads) and the runtime (PoseSession): ground floor, no imports."""

#: largest model input accepted: each side, and height x width (validation and every
#: prediction allocate a tensor of this size per image)
MAX_INPUT_SIDE = 8192
MAX_INPUT_PIXELS = 4096 * 4096
