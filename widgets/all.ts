/**
 * Every view file, imported once so each registers the result kinds it draws
 * (widgets/registry.ts). Adding a view is adding a file and a line here.
 */
import "./score-view";
import "./sanity-view";
import "./split-view";
import "./sweep-view";
import "./layer-error-view";
import "./ranges-view";
import "./weight-channels-view";
import "./histogram-view";
import "./activation-axes-view";
import "./outlier-dimensions-view";
import "./outlier-fixes-view";
import "./flow-view";
import "./pareto-view";
import "./training-curve-view";
import "./channel-ranges-view";
import "./cle-view";
import "./activation-aware-cle-view";
import "./before-after-view";
import "./fold-view";
import "./high-bias-view";
import "./bias-correction-view";
import "./adaround-view";
import "./range-setting-view";
import "./image-comparison-view";
