import t from 'tap'
import { testScenarios } from './helpers/refusals.js'

testScenarios(t, ['rate limit', 'overload'])
