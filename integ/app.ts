#!/usr/bin/env node
// The sample app: the guide's bin/cdk.ts on top of the library.
//   cdk synth                          -> ChronosTraining-dev-Stack
//   cdk deploy -c @chronos/training-infra:environment=stage    -> ChronosTraining-stage-Stack
// Environment and cost center come from context (-c key=value or cdk.json), as the guide
// describes; account and region from the CDK CLI's default environment (sample.ts says so).
import { App } from 'aws-cdk-lib';
import { sampleStack } from './sample';

const app = new App();
sampleStack(app);
app.synth();
