// The loadable aws driver: its entry symbol over the driver_aws_lib library.
#include "driver_aws/driver.hpp"

FLOTILLA_PLUGIN(flotilla::aws::AwsDriver, "aws", "0.1.0",
                "Nodes are EC2 instances running Docker with TLS, reached by the docker runtime; needs AWS credentials",
                flotilla::aws::manifest())
