// The loadable elk plugin: its entry symbol over addon_elk_lib.
#include "addon_elk/elk_addon.hpp"
#include "addon_elk/elk_model.hpp"

FLOTILLA_PLUGIN(flotilla::addons::elk::Elk, "elk", "0.1.0",
                "Elasticsearch, Logstash and Kibana on infra, logspout on every Docker node shipping every container's output",
                flotilla::addons::elk::manifest())
