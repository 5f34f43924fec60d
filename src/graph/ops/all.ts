// Every op file registers its kernel and the Keras classes it lowers; import once.
import "./activation";
import "./batch-norm";
import "./conv1d";
import "./conv2d";
import "./dense";
import "./depthwise-conv2d";
import "./embedding";
import "./layer-norm";
import "./merge";
import "./pooling";
import "./reshape";
import "./separable-conv2d";
import "./upsampling2d";
import "./zero-padding2d";
