#!/usr/bin/python3
"""botocore's own EC2 waiters against sked-ec2-emulator, for
src/ec2emu/awscli_test.cc.

Usage: botocore_waiters.py ENDPOINT_URL

Launches one one-time spot instance with botocore's client (static keys
test/test, region us-east-1), waits for it with the `instance_running` waiter,
terminates it and waits with `instance_terminated` (WaiterConfig Delay 1: the
CLI's waiters poll every 15 s). Prints one JSON object:
  {"botocore_version", "instance_id", "launched_state", "running_state",
   "terminating_state", "terminated_state", "state_reason_code",
   "lifecycle", "spot_instance_request_id", "waited_running_s",
   "waited_terminated_s"}
Exits non-zero (with botocore's error on stderr) when a waiter gives up.

Must run under Debian's /usr/bin/python3 with python3-botocore; nothing here
reaches past the endpoint given (IMDS is switched off for the client).
"""

import json
import os
import sys
import time

import botocore
import botocore.session


def main():
    endpoint = sys.argv[1]
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    session = botocore.session.get_session()
    client = session.create_client(
        "ec2",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    launched = client.run_instances(
        ImageId="ami-0123456789abcdef0",
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        InstanceMarketOptions={
            "MarketType": "spot",
            "SpotOptions": {
                "SpotInstanceType": "one-time",
                "InstanceInterruptionBehavior": "terminate",
            },
        },
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "sked:task-id", "Value": "waiter"}]}
        ],
    )
    instance = launched["Instances"][0]
    instance_id = instance["InstanceId"]
    config = {"Delay": 1, "MaxAttempts": 30}

    start = time.monotonic()
    client.get_waiter("instance_running").wait(InstanceIds=[instance_id], WaiterConfig=config)
    waited_running = time.monotonic() - start
    running = client.describe_instances(InstanceIds=[instance_id])
    running_state = running["Reservations"][0]["Instances"][0]["State"]["Name"]

    terminating = client.terminate_instances(InstanceIds=[instance_id])
    start = time.monotonic()
    client.get_waiter("instance_terminated").wait(InstanceIds=[instance_id], WaiterConfig=config)
    waited_terminated = time.monotonic() - start
    final = client.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]

    print(
        json.dumps(
            {
                "botocore_version": botocore.__version__,
                "instance_id": instance_id,
                "launched_state": instance["State"]["Name"],
                "running_state": running_state,
                "terminating_state": terminating["TerminatingInstances"][0]["CurrentState"]["Name"],
                "terminated_state": final["State"]["Name"],
                "state_reason_code": final.get("StateReason", {}).get("Code", ""),
                "lifecycle": final.get("InstanceLifecycle", ""),
                "spot_instance_request_id": final.get("SpotInstanceRequestId", ""),
                "waited_running_s": waited_running,
                "waited_terminated_s": waited_terminated,
            }
        )
    )


if __name__ == "__main__":
    main()
