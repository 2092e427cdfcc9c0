import t from 'tap'
import { testScenarios } from './helpers/refusals.js'

testScenarios(t, ['no key', 'wrong key'])
