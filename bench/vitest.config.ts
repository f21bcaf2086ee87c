import { packageTestConfig } from '../vitest.shared.ts';

export default packageTestConfig(240_000);
