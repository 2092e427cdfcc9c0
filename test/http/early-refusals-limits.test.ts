import t from 'tap'
import { testScenarios } from './helpers/refusals.js'

testScenarios(t, ['quota exceeded', 'Content-Length over the limit'])
