#!/usr/bin/env node
// The sample app: the guide's bin/cdk.ts on top of the library.
//   cdk synth                          -> ChronosTraining-dev-Stack
//   cdk deploy -c environment=stage    -> ChronosTraining-stage-Stack
// Environment, cost center, account and region come from context
// (-c key=value or cdk.json), as the guide describes.
import { App } from 'aws-cdk-lib';
import { sampleStack } from './sample';

const app = new App();
sampleStack(app);
app.synth();
