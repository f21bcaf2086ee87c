import { packageTestConfig } from '../../vitest.shared.ts';

export default packageTestConfig(120_000);
