export * from './foundation-exports';
export * from './foundation-reference';
export * from './training-network';
export * from './training-bucket';
export * from './training-instance-role';
export * from './training-egress-security-group';
export * from './chronos-training-foundation';
export * from './chronos-training-stack';
